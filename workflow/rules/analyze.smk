# Latent analysis of each trained run on the test split.

rule analyze:
    input:
        data=f"{RESULTS}/data/{{dataset}}.npz",
        model=f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/model.pt",
    output:
        metrics=f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/metrics.json",
        latents=f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/latents.npz",
        figures=report(
            directory(f"{RESULTS}/runs/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}/figures"),
            patterns=["{name}.png"],
            caption="../report/run_figures.rst",
            category="Run figures",
            subcategory="{dataset}, latent {latent}",
            labels={"prior": "{prior}", "seed": "{seed}", "figure": "{name}"},
        ),
    group:
        RUN_GROUP
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/analyze/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyze/{{dataset}}/{{prior}}/z{{latent}}/seed{{seed}}.tsv"
    params:
        settings=canonical_json(config["analysis"]),
        version=versions.ANALYSIS,
        run_dir=lambda wildcards, input: os.path.dirname(input.model),
        figures=draws_figures,
    threads: ANALYZE_RESOURCES["threads"]
    resources:
        mem_mb=ANALYZE_RESOURCES["mem_mb"],
        runtime=ANALYZE_RESOURCES["runtime"],
        pack_slot=PACK_SLOT,
    shell:
        "python -m sparse_vae analyze --data {input.data:q} --run-dir {params.run_dir:q} "
        "--params {params.settings:q} --threads {threads} {params.figures} 2>&1 | tee {log:q}"
