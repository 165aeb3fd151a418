// The aarch64 conv kernel's entry points: conv_aarch64_i8mm.h describes it.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_aarch64_i8mm.h"

QUANTUNE_CONV_ENTRIES(i8mm)
