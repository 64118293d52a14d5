"""Real server processes started by the project itself: tests, lab, demo, benchmarks."""
