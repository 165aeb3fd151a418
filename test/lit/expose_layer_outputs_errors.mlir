// RUN: not quantune-opt --quantune-expose-layer-outputs %s 2>&1 | FileCheck %s

// A module without tagged layers is an error that says what to run first.
// CHECK: quantune-opt: error: @main has no tagged layers to expose; run quantune-tag-layers first
func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}
