"""Known answers: simulated memorizers whose truth is known, the null runs fitted to an
observed run, and the calibration of a verdict on both.

- :mod:`~rhmfast.knownanswers.memorizer`: the model (a mixture of the grammar and the
  training set, with schedules for its memorized mass, validity and sharpening);
  numpy only;
- :mod:`~rhmfast.knownanswers.simulate`: its run directory (run space; torch);
- :mod:`~rhmfast.knownanswers.counts`: its copy counts drawn directly (count space;
  numpy only, the audit's nulls);
- :mod:`~rhmfast.knownanswers.nulls`: null runs fitted to an observed run (torch);
- :mod:`~rhmfast.knownanswers.calibration`: an experiment's decisions on simulated runs.

>>> from rhmfast.knownanswers.memorizer import Memorizer
>>> Memorizer(lam=0.2).tilt
'none'
"""
