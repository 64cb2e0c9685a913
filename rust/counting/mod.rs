//! Exact substring frequencies in a set of equal-length token strings.
