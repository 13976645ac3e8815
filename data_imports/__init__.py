"""Operations of data-imports: run one Meltano job unattended, check its settings, keep its log.

``python -m data_imports JOB`` (what ``run-etl.sh`` calls) runs one job and prints its result
last; ``scheduler.py`` and ``test_setup.py`` use the same modules.
"""
