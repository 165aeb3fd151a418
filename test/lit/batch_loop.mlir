// RUN: quantune-opt --pass-pipeline='quantune-batch-loop{batch=4}' %s | FileCheck %s

// The batch-1 body stays as it is, private; the new @main takes 4 samples and calls it once per sample, in
// one invocation. The names of the exposed results move to the new entry function.
// CHECK-LABEL: func.func private @main_single(%{{.*}}: tensor<1x3xf32>) -> (tensor<1x2xf32>, tensor<1x3xi8>)
// CHECK-NOT: quantune.exposed
// CHECK: arith.addf
// CHECK-LABEL: func.func @main(
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<4x3xf32>) -> (tensor<4x2xf32>, tensor<4x3xi8>)
// CHECK-SAME: quantune.exposed = ["a.output"]
// CHECK: %[[E0:.*]] = tensor.empty() : tensor<4x2xf32>
// CHECK: %[[E1:.*]] = tensor.empty() : tensor<4x3xi8>
// CHECK: %[[ALL:.*]]:2 = scf.for %[[I:.*]] = %c0 to %c4 step %c1 iter_args(%[[A0:.*]] = %[[E0]], %[[A1:.*]] = %[[E1]])
// CHECK: %[[S:.*]] = tensor.extract_slice %[[X]][%[[I]], 0] [1, 3] [1, 1] : tensor<4x3xf32> to tensor<1x3xf32>
// CHECK: %[[Y:.*]]:2 = func.call @main_single(%[[S]])
// CHECK: %[[N0:.*]] = tensor.insert_slice %[[Y]]#0 into %[[A0]][%[[I]], 0] [1, 2] [1, 1]
// CHECK: %[[N1:.*]] = tensor.insert_slice %[[Y]]#1 into %[[A1]][%[[I]], 0] [1, 3] [1, 1]
// CHECK: scf.yield %[[N0]], %[[N1]]
// CHECK: return %[[ALL]]#0, %[[ALL]]#1 : tensor<4x2xf32>, tensor<4x3xi8>
func.func @main(%x: tensor<1x3xf32>) -> (tensor<1x2xf32>, tensor<1x3xi8>) attributes {quantune.exposed = ["a.output"]} {
  %y = arith.addf %x, %x : tensor<1x3xf32>
  %s = tensor.extract_slice %y[0, 0] [1, 2] [1, 1] : tensor<1x3xf32> to tensor<1x2xf32>
  %q = arith.fptosi %y : tensor<1x3xf32> to tensor<1x3xi8>
  return %s, %q : tensor<1x2xf32>, tensor<1x3xi8>
}
