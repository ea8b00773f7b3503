// libxlsxwriter (Debian libxlsxwriter-dev), exposed to Swift as is.
#ifndef CXLSXWRITER_H
#define CXLSXWRITER_H
#include <xlsxwriter.h>
#endif
