"""Test helpers the project ships, as kazoo ships `kazoo.testing`: real server launchers
(`failover.testing.servers`), lab checks for tests and benchmarks (`failover.testing.lab`) and a
stand-in contender daemon for the coordination benchmarks (`failover.testing.contender`).
Nothing in the daemon imports them."""
