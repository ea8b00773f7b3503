#include "cxlsxwriter.h"
