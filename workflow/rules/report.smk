# The final report: tables and figure panels over all runs, verdicts on the talk's conclusions.

REPORT_OUTPUTS = [
    f"{RESULTS}/report/metrics.csv",
    f"{RESULTS}/report/summary.csv",
    f"{RESULTS}/report/verdicts.csv",
    f"{RESULTS}/report/pairwise.csv",
    f"{RESULTS}/report/report.html",
]


localrules:
    report,


rule report:
    input:
        metrics=run_files("metrics.json"),
        histories=run_files("history.csv"),
        summaries=run_files("train.json"),
        baselines=BASELINE_OUTPUTS,
        # another run of the study whose verdicts this report must reproduce (report.stability)
        stability=[config["report"]["stability"]] if config["report"].get("stability") else [],
    output:
        metrics=report(
            f"{RESULTS}/report/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        summary=report(
            f"{RESULTS}/report/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        timings=f"{RESULTS}/report/timings.csv",
        verdicts=report(
            f"{RESULTS}/report/verdicts.csv",
            caption="../report/verdicts.rst",
            category="Tables",
        ),
        pairwise=report(
            f"{RESULTS}/report/pairwise.csv",
            caption="../report/pairwise.rst",
            category="Tables",
        ),
        figures=report(
            directory(f"{RESULTS}/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
        html=report(
            f"{RESULTS}/report/report.html",
            caption="../report/report_html.rst",
            category="Report",
        ),
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/report.log",
    params:
        study=canonical_json(
            {
                "study": config["study"],
                "report": config["report"],
                "datasets": {
                    d: {
                        "source": config["datasets"][d]["source"],
                        "priors": dataset_priors(config, d),
                        "generator": generating_family(config["datasets"][d]),
                    }
                    for d in DATASETS
                },
            }
        ),
        version=versions.REPORT,
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "python -m sparse_vae report --study {params.study:q} --out-dir {params.out_dir:q} "
        "--baselines {input.baselines:q} -- {input.metrics:q} 2>&1 | tee {log:q}"
