#ifndef CCLOCK_H
#define CCLOCK_H

/// Small system calls Swift's Glibc module does not expose.

/// 1 when the kernel's clock is synchronised (STA_UNSYNC clear, adjtimex does not return TIME_ERROR),
/// 0 when it is not, -1 when adjtimex itself failed (errno set).
int cclock_clock_synchronised(void);

#endif
