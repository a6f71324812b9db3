# The sparse-coding positive control: one dictionary per dataset that has a `dictionary` entry,
# fitted on the same prepared patches as the VAEs and analysed with the same field fits.

BASELINE_DATASETS = [d for d in DATASETS if "dictionary" in config["datasets"][d]]
# Targets for the report (or `rule all`): metrics of every dataset's dictionary.
BASELINE_OUTPUTS = [f"{RESULTS}/baselines/{d}/dictionary/metrics.json" for d in BASELINE_DATASETS]


rule baseline:
    input:
        data=f"{RESULTS}/data/{{dataset}}.npz",
    output:
        atoms=f"{RESULTS}/baselines/{{dataset}}/dictionary/atoms.npz",
        metrics=f"{RESULTS}/baselines/{{dataset}}/dictionary/metrics.json",
        figure=f"{RESULTS}/baselines/{{dataset}}/dictionary/atoms.png",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/baseline/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baseline/{{dataset}}.tsv"
    params:
        settings=lambda w: canonical_json(config["datasets"][w.dataset]["dictionary"]),
        version=versions.ANALYSIS,
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    threads: ANALYZE_RESOURCES["threads"]
    resources:
        mem_mb=ANALYZE_RESOURCES["mem_mb"],
        runtime=ANALYZE_RESOURCES["runtime"],
    shell:
        "python -m sparse_vae baseline --data {input.data:q} --params {params.settings:q} "
        "--out-dir {params.out_dir:q} --threads {threads} 2>&1 | tee {log:q}"
