// Plain C wrapper over libv4l2/libv4lconvert (v4l2_ioctl is variadic, which Swift cannot call).
#ifndef CV4L2_H
#define CV4L2_H
#include <stddef.h>
#include <stdint.h>
#endif
