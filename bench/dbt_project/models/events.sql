select * from read_parquet('{{ var("bench_dir") }}/events.parquet')
