"""An RL stage's task: where its prompt rows come from, how they are asked, and the check that their rewards work.

    spec.py      the config keys every prompt-asking stage shares (PromptDataConfig) and the registered Task
    fields.py    field mapping: which row field is the prompt, the answer, the tests; taking the answer out
    template.py  prompt templates with a system message and few-shot turns
    load.py      load_prompt_rows: sources or a task, mapped, templated, rendered, held out
    check.py     the reference check and the starting model's solve rates
    data_check.py  ``raylign data check CONFIG``
"""
from raylign.engine.tasks.fields import FieldMap
from raylign.engine.tasks.spec import DataSource, PromptDataConfig, Task, TaskCheck

__all__ = ["DataSource", "FieldMap", "PromptDataConfig", "Task", "TaskCheck"]
