# The final report: tables and figure panels over all runs, verdicts on the talk's conclusions.

REPORT_DIR = RESULTS + "/report"
REPORT_OUTPUTS = [
    REPORT_DIR + "/metrics.csv",
    REPORT_DIR + "/summary.csv",
    REPORT_DIR + "/verdicts.csv",
    REPORT_DIR + "/report.html",
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
            REPORT_DIR + "/metrics.csv",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        summary=report(
            REPORT_DIR + "/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        timings=REPORT_DIR + "/timings.csv",
        verdicts=report(
            REPORT_DIR + "/verdicts.csv",
            caption="../report/verdicts.rst",
            category="Tables",
        ),
        figures=report(
            directory(REPORT_DIR + "/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
        html=REPORT_DIR + "/report.html",
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        RESULTS + "/logs/report.log",
    params:
        study=as_json(
            {
                "study": config["study"],
                "report": config["report"],
                "datasets": {d: {"source": config["datasets"][d]["source"]} for d in DATASETS},
            }
        ),
        code=REPORT_CODE,
        out_dir=REPORT_DIR,
    shell:
        "{SPARSE_VAE} report --study {params.study:q} --out-dir {params.out_dir:q} "
        "{input.metrics:q} 2>&1 | tee {log:q}"
