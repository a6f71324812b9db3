# The final report: tables and figure panels over all runs, verdicts on the talk's conclusions.

REPORT_OUTPUTS = [
    "results/report/metrics.csv",
    "results/report/summary.csv",
    "results/report/verdicts.csv",
    "results/report/report.html",
]


localrules:
    report,


rule report:
    input:
        metrics=run_files("metrics.json"),
        histories=run_files("history.csv"),
        summaries=run_files("train.json"),
    output:
        metrics=report(
            "results/report/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        summary=report(
            "results/report/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        timings="results/report/timings.csv",
        verdicts=report(
            "results/report/verdicts.csv",
            caption="../report/verdicts.rst",
            category="Tables",
        ),
        figures=report(
            directory("results/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
        html="results/report/report.html",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        "results/logs/report.log",
    params:
        study=canonical_json(
            {
                "study": config["study"],
                "report": config["report"],
                "datasets": {d: {"source": config["datasets"][d]["source"]} for d in DATASETS},
            }
        ),
        code=REPORT_CODE,
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "python -m sparse_vae report --study {params.study:q} --out-dir {params.out_dir:q} "
        "{input.metrics:q} 2>&1 | tee {log:q}"
