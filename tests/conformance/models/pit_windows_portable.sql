{{ conformance_windows(rendering='portable') }}
