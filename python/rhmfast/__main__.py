from rhmfast.cli import main

raise SystemExit(main())
