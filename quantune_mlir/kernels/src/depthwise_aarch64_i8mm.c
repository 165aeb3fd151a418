// The aarch64 depthwise kernel (depthwise_aarch64.h) and its fusion with the 1x1 conv after it on the
// i8mm conv kernel (conv_aarch64_i8mm.h): the i8mm library's depthwise object.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_aarch64_i8mm.h"
#include "depthwise_aarch64.h"
#include "depthwise_entries.h"

QUANTUNE_DEPTHWISE_ENTRIES(i8mm)
