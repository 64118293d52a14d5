"""The daemon: observer, leader and agent roles wired for one process."""
