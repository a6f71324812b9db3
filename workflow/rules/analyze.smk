# Latent analysis of each trained run on the test split.

ANALYZE_RESOURCES = config["resources"]["analyze"]


rule analyze:
    input:
        data=RESULTS + "/data/{dataset}.npz",
        model=RUN_DIR + "/model.pt",
    output:
        metrics=RUN_DIR + "/metrics.json",
        latents=RUN_DIR + "/latents.npz",
        figures=directory(RUN_DIR + "/figures"),
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        RESULTS + "/logs/analyze/{dataset}/{prior}/z{latent}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/analyze/{dataset}/{prior}/z{latent}/seed{seed}.tsv"
    params:
        settings=as_json(config["analysis"]),
        code=ANALYZE_CODE,
        run_dir=RUN_DIR,
    threads: ANALYZE_RESOURCES["threads"]
    resources:
        mem_mb=ANALYZE_RESOURCES["mem_mb"],
        runtime=ANALYZE_RESOURCES["runtime"],
    shell:
        "{SPARSE_VAE} analyze --data {input.data:q} --run-dir {params.run_dir:q} "
        "--params {params.settings:q} --threads {threads} 2>&1 | tee {log:q}"
