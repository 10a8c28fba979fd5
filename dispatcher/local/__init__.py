"""Local tooling, apart from the send path: the gateways' sandbox, the demo, the fault drills and
the process stack they run on. None of it is imported by a worker, the webhook or a producer."""
