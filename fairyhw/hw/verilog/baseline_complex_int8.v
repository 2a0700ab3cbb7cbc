// Baseline: LANES conventional complex int8 MACs, acc += w * x (four multipliers a lane),
// one weight per lane and one broadcast activation per cycle, 22-bit complex accumulators.
module dut #(parameter LANES = 8, parameter W = 22) (
  input clk, input rst, input en, input clear,
  input signed [7:0] x_re, input signed [7:0] x_im,
  input [16*LANES-1:0] w,                  // lane l: re [16l+7:16l], im [16l+15:16l+8]
  output [2*W*LANES-1:0] acc               // lane l: re [2Wl+W-1:2Wl], im above it
);
  genvar l;
  generate for (l = 0; l < LANES; l = l + 1) begin : lane
    wire signed [7:0] wr = w[16*l +: 8];
    wire signed [7:0] wi = w[16*l + 8 +: 8];
    wire signed [16:0] pr = wr * x_re - wi * x_im;
    wire signed [16:0] pi = wr * x_im + wi * x_re;
    reg signed [W-1:0] ar = 0, ai = 0;
    always @(posedge clk)
      if (rst || clear) begin ar <= 0; ai <= 0; end
      else if (en) begin ar <= ar + pr; ai <= ai + pi; end
    assign acc[2*W*l +: W] = ar;
    assign acc[2*W*l + W +: W] = ai;
  end endgenerate
endmodule
