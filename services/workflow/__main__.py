from porting_runtime.service import main

from .service import WORKFLOW

main(WORKFLOW)
