#include "cclock.h"
#include <sys/timex.h>

int cclock_clock_synchronised(void) {
    struct timex tx = {0};
    tx.modes = 0; /* read only */
    int state = adjtimex(&tx);
    if (state < 0) return -1;
    if (state == TIME_ERROR || (tx.status & STA_UNSYNC)) return 0;
    return 1;
}
