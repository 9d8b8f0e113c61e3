{%- if target.type == 'spark' %}
select * from parquet.`{{ var("bench_dir") }}/spine.parquet`
{%- else %}
select * from read_parquet('{{ var("bench_dir") }}/spine.parquet')
{%- endif %}
