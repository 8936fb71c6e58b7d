"""The README's 30-second example: Django's signal docs, run sync and async.

Needs asignal only. Run it with ``python examples/quickstart.py``.
"""

import anyio

from asignal import Signal, receiver
from asignal.signals import post_save, pre_delete


class MyModel:
    def __init__(self, name: str) -> None:
        self.name = name


# A receiver takes the sender and **kwargs; @receiver connects it.
@receiver(post_save, sender=MyModel)
def mymodel_post_save_handler(sender, instance, created, **kwargs):
    print(f"post_save: {instance.name} (created={created})")


# Or connect() explicitly. Async receivers are awaited.
async def mymodel_pre_delete_handler(sender, instance, **kwargs):
    print(f"pre_delete: {instance.name}")


pre_delete.connect(mymodel_pre_delete_handler, sender=MyModel)

# A custom signal; the old-docs spelling with providing_args still works.
my_custom_signal = Signal(providing_args=["instance", "created"])


@receiver(my_custom_signal)
def my_custom_signal_handler(sender, instance, created, **kwargs):
    return f"custom: {instance.name}, created: {created}"


def sync_code() -> None:
    obj = MyModel("a")
    post_save.send(sender=MyModel, instance=obj, created=True)
    print(my_custom_signal.send(sender=MyModel, instance=obj, created=True))


async def async_code() -> None:
    obj = MyModel("b")
    await post_save.asend(sender=MyModel, instance=obj, created=False)
    await pre_delete.asend(MyModel, instance=obj)


sync_code()
anyio.run(async_code)
