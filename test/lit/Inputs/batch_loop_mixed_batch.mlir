func.func @main(%x: tensor<1x2xf32>) -> tensor<2xf32> {
  %y = tensor.collapse_shape %x [[0, 1]] : tensor<1x2xf32> into tensor<2xf32>
  return %y : tensor<2xf32>
}
