{{ conformance_windows() }}
