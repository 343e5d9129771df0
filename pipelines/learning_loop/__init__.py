"""The learning loop: what people asked and how they judged it, kept to teach the reader.

:mod:`~pipelines.learning_loop.question_log` records every question, answer, confidence and
verdict; :mod:`~pipelines.learning_loop.monitoring` turns it into the Monitor page's numbers;
:mod:`~pipelines.learning_loop.label_queue` picks the questions worth labeling;
:mod:`~pipelines.learning_loop.erasure` removes a deleted document from all of it. The query
service writes the log, so this sits inside the core (which imports no other package).
"""
