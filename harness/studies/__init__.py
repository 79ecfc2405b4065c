"""The studies: what boots a kernel many times and measures, built on the
kernel test harness (source, series, build, vm, results, check, send,
kcidb), which imports nothing from here.

- run: the entry points the CLI calls (throttle, experiment, bench), each
  through the Pipeline's public stage API;
- throttle, throttle_report: the stress-ng throttling experiment;
- experiment, experiment_stats, experiment_report: the phased experiment;
- bench: what the hook costs;
- penalty: memory.high's throttle formula, tabulated.
"""
