"""The running process: scheduling, leader election, operations endpoints, metrics, shutdown."""
