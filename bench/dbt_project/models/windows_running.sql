{{ bench_windows(with_max=false) }}
