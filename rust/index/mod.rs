//! Suffix array (+ LCP) over a training set, for membership, longest-match and
//! substring-count queries.
