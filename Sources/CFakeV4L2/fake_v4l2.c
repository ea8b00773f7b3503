#include "fake_v4l2.h"
