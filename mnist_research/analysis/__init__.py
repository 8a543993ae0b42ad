"""Analysis: metrics, figures, report.html, sweep and compare tables."""
