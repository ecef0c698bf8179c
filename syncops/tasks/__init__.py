"""Celery tasks of syncops, one module per flow; imported here so autodiscovery finds them.

Tasks are thin (load ids, call one service). Name each task explicitly
(``name="syncops.tasks.<flow>_<action>"``) so CELERY_TASK_ROUTES sends it to its queue.
"""
from syncops.tasks import imports, push, webhooks  # noqa: F401
