// A user-space fake V4L2 device for tests (DESIGN.md): interposes libc calls for one path.
#ifndef FAKE_V4L2_H
#define FAKE_V4L2_H
#endif
