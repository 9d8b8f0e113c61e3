{{ bench_windows(with_running=false) }}
