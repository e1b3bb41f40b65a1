"""Kafka I/O: topic administration and plain aiokafka helpers (no pure logic here)."""
