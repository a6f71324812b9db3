# Known-answer controls of the metric estimators (issue 34): each estimator a verdict reads, run on
# synthetic codes of known label information and rate (Gaussian and Cauchy posteriors, small N and
# the study's info_examples), and the centre-surround classifier's detection rate per surround
# ratio. Independent of every run: one job per study, which the report reads. Written for the stage-
# version rules (common.smk imports sparse_vae.versions).

# the analysis config slice the controls use (the same settings the runs' estimators use)
CONTROLS_SETTINGS = {key: config["analysis"][key] for key in ("info_draws", "probe_folds", "info_examples")}
CONTROLS_OUTPUT = f"{RESULTS}/controls/estimators.json"
RETINA_CONTROL_OUTPUT = f"{RESULTS}/controls/retina.json"


# A minute of CPU, once per study: run where Snakemake runs (like prepare and report), not as a
# Slurm job.
localrules:
    estimator_controls,


rule estimator_controls:
    output:
        estimators=CONTROLS_OUTPUT,
        retina=RETINA_CONTROL_OUTPUT,
    conda:
        "../../envs/sparse-vae.yaml"
    log:
        f"{RESULTS}/logs/controls/estimators.log",
    benchmark:
        f"{RESULTS}/benchmarks/controls/estimators.tsv"
    params:
        settings=canonical_json(CONTROLS_SETTINGS),
        # the controls move with the estimators (versions.ANALYSIS) and with their own design
        # (versions.CONTROLS: common random numbers across families, since 2)
        version=f"{versions.ANALYSIS}.{versions.CONTROLS}",
    threads: ANALYZE_RESOURCES["threads"]
    resources:
        mem_mb=ANALYZE_RESOURCES["mem_mb"],
        runtime=ANALYZE_RESOURCES["runtime"],
    shell:
        "python -m sparse_vae estimator-controls --out {output.estimators:q} --retina-out {output.retina:q} "
        "--params {params.settings:q} "
        "--threads {threads} 2>&1 | tee {log:q}"
