# Latent analysis of each trained run on the test split: one job per pack (one process, one data
# load) writing every run's metrics, latents and figures (drawn for the report's seed only).

for PACK, PACK_SEEDS in SEED_PACKS.items():

    rule:
        name:
            f"analyze_pack{PACK}"
        input:
            data=f"{RESULTS}/data/{{dataset}}.npz",
            models=pack_files(PACK_SEEDS, "model.pt"),
        output:
            metrics=pack_files(PACK_SEEDS, "metrics.json"),
            latents=pack_files(PACK_SEEDS, "latents.npz"),
            figures=[
                report(
                    directory(figures),
                    patterns=["{name}.png"],
                    caption="../report/run_figures.rst",
                    category="Run figures",
                    subcategory="{dataset}, latent {latent}",
                    labels={"prior": "{prior}", "seed": str(seed), "figure": "{name}"},
                )
                for seed, figures in zip(PACK_SEEDS, pack_files(PACK_SEEDS, "figures"))
            ],
        group:
            RUN_GROUP
        conda:
            "../../envs/sparse-vae.yaml"
        log:
            f"{RESULTS}/logs/analyze/{{dataset}}/{{prior}}/z{{latent}}/pack{PACK}.log",
        benchmark:
            f"{RESULTS}/benchmarks/analyze/{{dataset}}/{{prior}}/z{{latent}}/pack{PACK}.tsv"
        params:
            settings=canonical_json(config["analysis"]),
            version=versions.ANALYSIS,
            run_dirs=lambda wildcards, input: [os.path.dirname(path) for path in input.models],
            figures=draws_figures(PACK_SEEDS),
        threads: ANALYZE_RESOURCES["threads"]
        resources:
            mem_mb=ANALYZE_RESOURCES["mem_mb"],
            runtime=pack_runtime(ANALYZE_RESOURCES, PACK_SEEDS),
            pack_slot=PACK_SLOT,
        shell:
            "python -m sparse_vae analyze --data {input.data:q} --run-dir {params.run_dirs:q} "
            "--params {params.settings:q} --threads {threads} {params.figures} 2>&1 | tee {log:q}"
