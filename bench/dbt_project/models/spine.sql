select * from read_parquet('{{ var("bench_dir") }}/spine.parquet')
