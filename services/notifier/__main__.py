from porting_runtime.service import main

from .service import NOTIFIER

main(NOTIFIER)
