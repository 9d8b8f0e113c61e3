{{ bench_windows() }}
