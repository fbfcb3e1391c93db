"""What tests and benchmarks build: small models, synthetic libraries, daemons, faults, TUIs."""
