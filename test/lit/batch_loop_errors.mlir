// RUN: not quantune-opt --pass-pipeline='quantune-batch-loop{batch=4}' %s 2>&1 | FileCheck %s
// RUN: not quantune-opt --pass-pipeline='quantune-batch-loop{batch=4}' %S/Inputs/batch_loop_mixed_batch.mlir 2>&1 | FileCheck %s --check-prefix=MIXED

// The batch must be a multiple of the batch the function was imported at.
// CHECK: quantune-opt: error: quantune-batch-loop: @main runs 3 samples at a time, which does not divide the batch of 4; pass a multiple of 3
func.func @main(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  return %x : tensor<3x2xf32>
}

// Every input and result must have the same leading (batch) dimension.
// MIXED: quantune-opt: error: quantune-batch-loop: @main must take and return ranked tensors that share their leading (batch) dimension, not tensor<1x2xf32>, tensor<2xf32>
