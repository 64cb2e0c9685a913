//! The Random Hierarchy Model grammar: rules, sampling, parsing, probabilities,
//! enumeration and exact expected frequencies.
