//! GitHub: the sticky pull-request comment, job summary, baseline artifacts.
