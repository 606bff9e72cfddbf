from porting_runtime.service import main

from .service import PORTABILITY

main(PORTABILITY)
