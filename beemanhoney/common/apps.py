from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "beemanhoney.common"
    label = "common"

    def ready(self) -> None:
        from celery.signals import before_task_publish, task_postrun, task_prerun
        from django.core import checks
        from django.core.signals import request_finished, request_started

        from beemanhoney.common import request_ids
        from beemanhoney.common.checks import invalid_indexes_check

        checks.register(invalid_indexes_check, checks.Tags.database)

        request_started.connect(request_ids.request_started, dispatch_uid="request_id_started")
        request_finished.connect(request_ids.request_finished, dispatch_uid="request_id_finished")
        before_task_publish.connect(request_ids.task_published, dispatch_uid="request_id_task")
        task_prerun.connect(request_ids.task_started, dispatch_uid="request_id_task_started")
        task_postrun.connect(request_ids.task_finished, dispatch_uid="request_id_task_finished")
