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


# `snakemake --report` opens on this text, which links to the scorecard.
report: "../report/workflow.rst"


rule report:
    input:
        metrics=run_files("metrics.json"),
        histories=run_files("history.csv"),
        summaries=run_files("train.json"),
        baselines=BASELINE_OUTPUTS,
        # another run of the study whose verdicts this report must reproduce (report.stability)
        # (its pairwise.csv and metrics.csv beside it too: answers compared, runs it left unperturbed)
        stability=stability_tables(),
        # the known-answer controls analysis computes (rule estimator_controls)
        estimators=CONTROLS_OUTPUT,
        retina=RETINA_CONTROL_OUTPUT,
    output:
        metrics=report(
            f"{RESULTS}/report/metrics.csv",
            caption="../report/metrics.rst",
            category="4. Report page and tables",
        ),
        summary=report(
            f"{RESULTS}/report/summary.csv",
            caption="../report/summary.rst",
            category="4. Report page and tables",
        ),
        timings=f"{RESULTS}/report/timings.csv",
        verdicts=report(
            f"{RESULTS}/report/verdicts.csv",
            caption="../report/verdicts.rst",
            category="4. Report page and tables",
        ),
        pairwise=report(
            f"{RESULTS}/report/pairwise.csv",
            caption="../report/pairwise.rst",
            category="4. Report page and tables",
        ),
        # the scorecard first, then the talk's figures, then the panels: one folder, sorted into
        # categories by file name (Snakemake's report lists categories alphabetically)
        figures=report(
            directory(f"{RESULTS}/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category=figure_category,
        ),
        html=report(
            f"{RESULTS}/report/report.html",
            caption="../report/report_html.rst",
            category="4. Report page and tables",
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
                        "model": config["datasets"][d]["model"],
                    }
                    for d in DATASETS
                },
            }
        ),
        version=versions.REPORT,
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "python -m sparse_vae report --study {params.study:q} --out-dir {params.out_dir:q} "
        "--baselines {input.baselines:q} --estimator-controls {input.estimators:q} "
        "--retina-control {input.retina:q} -- {input.metrics:q} 2>&1 | tee {log:q}"
