/** The public URLs of a job's outputs, all built on the origin recorded at upload. */
export const statusUrl = (baseUrl: string, id: string): string => `${baseUrl}/status/${id}`;
export const downloadUrl = (baseUrl: string, id: string): string => `${baseUrl}/download/${id}`;
export const imageUrl = (baseUrl: string, outputFile: string): string =>
  `${baseUrl}/processed_images/${outputFile}`;
export const uploadedImageUrl = (baseUrl: string, id: string): string => `${baseUrl}/images/${id}`;
